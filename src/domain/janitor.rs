//! The janitor: resolves work whose outcome the provider left unknown (PENDING refunds,
//! PENDING payment attempts at a provider that can be asked) by asking the provider again,
//! on a backoff schedule (`JANITOR_DELAYS_SECS`: 5 minutes, 1 hour, then daily).
//!
//! Safe with several `serve` processes on one database: work is claimed with
//! `FOR UPDATE SKIP LOCKED`, and claiming moves its next check past a lease, so a claim holds
//! no lock while the provider is asked and no two workers ask about the same item at once.
//! A worker that dies mid-batch leaves its items to be claimed again when the lease ends.
//! Nothing is kept in memory between passes.

use chrono::{DateTime, Utc};
use diesel_async::AsyncConnection;
use serde::Serialize;

use super::access::{Caller, Role};
use super::events::JANITOR_ACTOR;
use super::{lifecycle, refunds};
use crate::db::{DbPool, queries};
use crate::error::{AppError, AppResult};
use crate::providers::Providers;

/// Items claimed per pass and kind.
const BATCH: i64 = 10;
/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub refunds_checked: usize,
    pub refunds_resolved: usize,
    pub payments_checked: usize,
    pub payments_resolved: usize,
    /// Attempts failed because the customer did not authenticate in time.
    pub authentications_expired: usize,
}

fn caller() -> Caller {
    Caller { name: JANITOR_ACTOR.to_owned(), role: Role::Admin, ..Caller::system() }
}

/// Claims one batch of the items due now, checks them one by one, and returns: work that
/// stays unresolved is rescheduled for a later pass, so a pass always ends.
pub async fn run_once(pool: &DbPool, providers: &Providers) -> AppResult<Pass> {
    let mut pass = Pass { authentications_expired: lifecycle::expire_authentications(pool).await?, ..Pass::default() };
    if !providers.can_be_asked() {
        // Only provider work is ever unresolved; a process that cannot ask leaves it to one
        // that can (and does not push its next check back).
        return Ok(pass);
    }
    let now = Utc::now();
    // Long enough for the whole batch to be checked one by one at the slowest.
    let longest = providers.longest_check() * u32::try_from(2 * BATCH).unwrap_or(u32::MAX);
    let lease = now + chrono::Duration::from_std(longest).unwrap_or(chrono::Duration::hours(1)) + MARGIN;
    let mut conn = pool.get().await?;
    let (due_refunds, due_payments) = conn
        .transaction::<_, AppError, _>(async |conn| {
            let refunds = queries::claim_due_refunds(conn, now, lease, BATCH).await?;
            let payments = queries::claim_due_payments(conn, now, lease, BATCH).await?;
            Ok((refunds, payments))
        })
        .await?;
    drop(conn);
    for refund in &due_refunds {
        pass.refunds_checked += 1;
        match refunds::resolve_refund(pool, providers, refund).await {
            Ok(true) => pass.refunds_resolved += 1,
            Ok(false) => {}
            Err(error) => {
                error.log();
                tracing::warn!(refund = refund.id, error = %error, "janitor: checking a refund failed");
            }
        }
    }
    // Members of one charge for several orders share its intent, and one answer settles
    // them all: the provider is asked once per intent in a pass.
    let mut asked = std::collections::HashSet::new();
    for payment in &due_payments {
        pass.payments_checked += 1;
        let first = payment.payment_intent_id.as_ref().is_none_or(|intent| asked.insert(intent.clone()));
        let error = if first {
            let checked = lifecycle::reconcile_payment(pool, providers, &caller(), payment.order_id, payment.id).await;
            if let Err(error) = &checked {
                error.log();
                tracing::warn!(payment = payment.id, error = %error, "janitor: checking a payment failed");
            }
            checked.err().map(|error| error.to_string())
        } else {
            None
        };
        let mut conn = pool.get().await?;
        let next = providers.next_check(Utc::now(), payment.checks);
        queries::reschedule_payment(&mut conn, payment.id, next, error.as_deref()).await?;
        // An AUTHORIZED attempt counts as resolved (the provider decided); it stays
        // scheduled all the same, since its authorisation can expire.
        let still_pending = queries::find_payment(&mut conn, payment.id).await?.is_some_and(|p| p.status == 1);
        if !still_pending {
            pass.payments_resolved += 1;
        }
    }
    Ok(pass)
}

/// Added to every lease, beyond the slowest provider calls.
const MARGIN: chrono::Duration = chrono::Duration::minutes(1);

/// Runs `run_once` every `tick` until `stop` resolves.
pub async fn run(pool: DbPool, providers: Providers, tick: std::time::Duration, stop: impl Future<Output = ()>) {
    let mut stop = std::pin::pin!(stop);
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = interval.tick() => {}
        }
        // A full batch means more may be due: go on (bounded) before waiting for a tick.
        for _ in 0..100 {
            match run_once(&pool, &providers).await {
                Ok(pass) => {
                    if pass != Pass::default() {
                        tracing::info!(?pass, "janitor pass");
                    }
                    let full = pass.refunds_checked >= BATCH as usize || pass.payments_checked >= BATCH as usize;
                    if !full {
                        break;
                    }
                }
                Err(error) => {
                    error.log();
                    tracing::warn!(error = %error, "janitor pass failed");
                    break;
                }
            }
        }
    }
}

/// One item whose outcome is not known yet.
#[derive(Debug, Clone, Serialize)]
pub struct Unresolved {
    /// `refund` or `payment`.
    pub kind: &'static str,
    pub id: i64,
    pub order_id: i64,
    pub amount_cents: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub age_seconds: i64,
    pub checks: i32,
    pub next_check_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// PENDING refunds and provider payment attempts begun more than `older_than_seconds` ago,
/// oldest first, at most `limit` of each kind. Admins only.
pub async fn unresolved(
    pool: &DbPool,
    caller: &Caller,
    older_than_seconds: i64,
    limit: i64,
) -> AppResult<Vec<Unresolved>> {
    caller.require_admin("unresolvedWork")?;
    if older_than_seconds < 0 {
        return Err(AppError::bad_input(format!("olderThanSeconds must be 0 or more (got {older_than_seconds})")));
    }
    if !(1..=500).contains(&limit) {
        return Err(AppError::bad_input(format!("limit must be between 1 and 500 (got {limit})")));
    }
    let now = Utc::now();
    let before = now - chrono::Duration::seconds(older_than_seconds.min(10 * 365 * 86_400));
    let mut conn = pool.get().await?;
    let refunds = queries::unresolved_refunds(&mut conn, before, limit).await?;
    let payments = queries::unresolved_payments(&mut conn, before, limit).await?;
    let mut items: Vec<Unresolved> = refunds
        .into_iter()
        .map(|r| Unresolved {
            kind: "refund",
            id: r.id,
            order_id: r.order_id,
            amount_cents: r.amount_cents,
            currency: r.currency,
            created_at: r.created_at,
            age_seconds: (now - r.created_at).num_seconds(),
            checks: r.checks,
            next_check_at: r.next_check_at,
            last_error: r.last_error,
        })
        .chain(payments.into_iter().map(|p| Unresolved {
            kind: "payment",
            id: p.id,
            order_id: p.order_id,
            amount_cents: p.amount_cents,
            currency: p.currency,
            created_at: p.created_at,
            age_seconds: (now - p.created_at).num_seconds(),
            checks: p.checks,
            next_check_at: p.next_check_at,
            last_error: p.last_error,
        }))
        .collect();
    items.sort_by_key(|item| (item.created_at, item.id));
    Ok(items)
}

/// For `/metrics`: per kind, how many items are unresolved and the age of the oldest.
pub async fn summary(pool: &DbPool) -> AppResult<Vec<(&'static str, i64, i64)>> {
    let now = Utc::now();
    let mut conn = pool.get().await?;
    let refunds = queries::pending_refunds_summary(&mut conn).await?;
    let payments = queries::pending_payments_summary(&mut conn).await?;
    let age = |oldest: Option<DateTime<Utc>>| oldest.map_or(0, |at| (now - at).num_seconds().max(0));
    Ok(vec![("refund", refunds.0, age(refunds.1)), ("payment", payments.0, age(payments.1))])
}
