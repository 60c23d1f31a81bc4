//! Queries of the webhook outbox (`webhook_deliveries`) and its attempt log.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::models::{NewWebhookAttempt, NewWebhookDelivery, WebhookAttempt, WebhookDelivery};
use super::schema::{webhook_attempts, webhook_deliveries};

/// Delivery states (`webhook_deliveries.state`).
pub mod state {
    pub const PENDING: i16 = 1;
    pub const DELIVERED: i16 = 2;
    pub const GIVEN_UP: i16 = 3;
}

/// The channel a committed delivery is announced on (`NOTIFY`), waking the workers.
pub const CHANNEL: &str = "billing_webhooks";

pub async fn insert_deliveries(conn: &mut AsyncPgConnection, rows: &[NewWebhookDelivery<'_>]) -> QueryResult<usize> {
    diesel::insert_into(webhook_deliveries::table).values(rows).execute(conn).await
}

/// Wakes the workers when the transaction commits (a rolled-back one notifies nobody).
pub async fn notify(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::sql_query(format!("NOTIFY {CHANNEL}")).execute(conn).await.map(|_| ())
}

/// Claims up to `limit` due deliveries, leasing each for `lease_ms` (its `next_attempt_at`
/// moves past the lease, so no other worker takes it meanwhile, and a worker that dies
/// gives it back when the lease ends). A delivery is due only when no earlier delivery of
/// the same order to the same URL is still pending: one order's events arrive in order,
/// while other orders' keep flowing.
pub async fn claim_due(conn: &mut AsyncPgConnection, limit: i64, lease_ms: i32) -> QueryResult<Vec<WebhookDelivery>> {
    diesel::sql_query(
        "WITH due AS (
             SELECT d.id FROM webhook_deliveries d
              WHERE d.state = 1 AND d.next_attempt_at <= now()
                AND NOT EXISTS (
                    SELECT 1 FROM webhook_deliveries e
                     WHERE e.order_id = d.order_id AND e.url = d.url AND e.state = 1 AND e.id < d.id)
              ORDER BY d.next_attempt_at, d.id
              LIMIT $1
              FOR UPDATE SKIP LOCKED)
         UPDATE webhook_deliveries w
            SET next_attempt_at = now() + make_interval(secs => $2::double precision / 1000),
                attempts = w.attempts + 1,
                claims = w.claims + 1
           FROM due WHERE w.id = due.id
         RETURNING w.*",
    )
    .bind::<BigInt, _>(limit)
    .bind::<Integer, _>(lease_ms)
    .load::<WebhookDelivery>(conn)
    .await
}

pub async fn insert_attempt(conn: &mut AsyncPgConnection, row: &NewWebhookAttempt<'_>) -> QueryResult<()> {
    diesel::insert_into(webhook_attempts::table).values(row).execute(conn).await.map(|_| ())
}

/// Records the end of one attempt: delivered, given up, or due again at `next`; only while
/// the claim that made it (`claimed`, the claim number it took) still holds the pending
/// row. Returns whether it did.
pub async fn finish_attempt(
    conn: &mut AsyncPgConnection,
    id: i64,
    claimed: i64,
    outcome: Finish,
    status: Option<i32>,
    error: Option<&str>,
) -> QueryResult<bool> {
    let now = Utc::now();
    let target = webhook_deliveries::table.filter(
        webhook_deliveries::id
            .eq(id)
            .and(webhook_deliveries::claims.eq(claimed))
            .and(webhook_deliveries::state.eq(state::PENDING)),
    );
    let set_last = (webhook_deliveries::last_status.eq(status), webhook_deliveries::last_error.eq(error));
    let updated = match outcome {
        Finish::Delivered => {
            diesel::update(target)
                .set((
                    set_last,
                    webhook_deliveries::state.eq(state::DELIVERED),
                    webhook_deliveries::delivered_at.eq(now),
                ))
                .execute(conn)
                .await?
        }
        Finish::GiveUp => {
            diesel::update(target)
                .set((set_last, webhook_deliveries::state.eq(state::GIVEN_UP), webhook_deliveries::given_up_at.eq(now)))
                .execute(conn)
                .await?
        }
        Finish::RetryAt(next) => {
            diesel::update(target).set((set_last, webhook_deliveries::next_attempt_at.eq(next))).execute(conn).await?
        }
    };
    Ok(updated == 1)
}

/// How an attempt ends for its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Delivered,
    GiveUp,
    RetryAt(DateTime<Utc>),
}

/// Gives up every pending delivery to `url` of `order_id` (after a 410 from an order's own
/// callback URL) or to endpoint `endpoint_id` (when it is disabled).
pub async fn give_up_pending(
    conn: &mut AsyncPgConnection,
    order_url: Option<(i64, &str)>,
    endpoint_id: Option<i64>,
    reason: &str,
) -> QueryResult<usize> {
    let now = Utc::now();
    let pending = webhook_deliveries::state.eq(state::PENDING);
    let set = (
        webhook_deliveries::state.eq(state::GIVEN_UP),
        webhook_deliveries::given_up_at.eq(now),
        webhook_deliveries::last_error.eq(reason),
    );
    let mut count = 0;
    if let Some((order_id, url)) = order_url {
        count += diesel::update(
            webhook_deliveries::table
                .filter(pending.and(webhook_deliveries::order_id.eq(order_id)).and(webhook_deliveries::url.eq(url))),
        )
        .set(set)
        .execute(conn)
        .await?;
    }
    if let Some(endpoint_id) = endpoint_id {
        count += diesel::update(
            webhook_deliveries::table.filter(pending.and(webhook_deliveries::endpoint_id.eq(endpoint_id))),
        )
        .set(set)
        .execute(conn)
        .await?;
    }
    Ok(count)
}

/// Filters of the delivery log; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub merchant_id: Option<Uuid>,
    pub order_id: Option<i64>,
    pub endpoint_id: Option<i64>,
    pub state: Option<i16>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_until: Option<DateTime<Utc>>,
}

fn filtered<'a>(f: &DeliveryFilter) -> webhook_deliveries::BoxedQuery<'a, diesel::pg::Pg> {
    let mut query = webhook_deliveries::table.into_boxed();
    if let Some(merchant_id) = f.merchant_id {
        query = query.filter(webhook_deliveries::merchant_id.eq(merchant_id));
    }
    if let Some(order_id) = f.order_id {
        query = query.filter(webhook_deliveries::order_id.eq(order_id));
    }
    if let Some(endpoint_id) = f.endpoint_id {
        query = query.filter(webhook_deliveries::endpoint_id.eq(endpoint_id));
    }
    if let Some(state) = f.state {
        query = query.filter(webhook_deliveries::state.eq(state));
    }
    if let Some(from) = f.created_from {
        query = query.filter(webhook_deliveries::created_at.ge(from));
    }
    if let Some(until) = f.created_until {
        query = query.filter(webhook_deliveries::created_at.lt(until));
    }
    query
}

/// A page of the delivery log, newest first.
pub async fn list_deliveries(
    conn: &mut AsyncPgConnection,
    f: &DeliveryFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<WebhookDelivery>> {
    filtered(f)
        .order_by((webhook_deliveries::created_at.desc(), webhook_deliveries::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(WebhookDelivery::as_select())
        .load(conn)
        .await
}

pub async fn attempts_for_deliveries(mut conn: &AsyncPgConnection, ids: &[i64]) -> QueryResult<Vec<WebhookAttempt>> {
    webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq_any(ids))
        .order_by((webhook_attempts::delivery_id.asc(), webhook_attempts::id.asc()))
        .select(WebhookAttempt::as_select())
        .load(&mut conn)
        .await
}

pub async fn find_delivery(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<WebhookDelivery>> {
    webhook_deliveries::table.find(id).select(WebhookDelivery::as_select()).first(conn).await.optional()
}

/// Sends deliveries matching `f` again (at most `limit`), under their own webhook ids;
/// returns the ids of the rows changed. A delivered or given-up one becomes pending and due
/// now with a fresh retry schedule; one still pending is only made due now (a worker that
/// holds it keeps its claim number, so whichever finishes second records nothing).
pub async fn redeliver(
    conn: &mut AsyncPgConnection,
    f: &DeliveryFilter,
    ids: Option<&[i64]>,
    limit: i64,
) -> QueryResult<Vec<i64>> {
    let mut chosen = filtered(f).select(webhook_deliveries::id).order_by(webhook_deliveries::id.asc()).limit(limit);
    if let Some(ids) = ids {
        chosen = chosen.filter(webhook_deliveries::id.eq_any(ids.to_vec()));
    }
    let ids: Vec<i64> = chosen.load(conn).await?;
    let now = Utc::now();
    // Pending ones first: the reset below makes rows pending.
    let hurried: Vec<i64> = diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq_any(&ids).and(webhook_deliveries::state.eq(state::PENDING))),
    )
    .set(webhook_deliveries::next_attempt_at.eq(now))
    .returning(webhook_deliveries::id)
    .get_results(conn)
    .await?;
    let mut changed: Vec<i64> = diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq_any(&ids).and(webhook_deliveries::state.ne(state::PENDING))),
    )
    .set((
        webhook_deliveries::state.eq(state::PENDING),
        webhook_deliveries::attempts.eq(0),
        webhook_deliveries::next_attempt_at.eq(now),
        webhook_deliveries::delivered_at.eq(None::<DateTime<Utc>>),
        webhook_deliveries::given_up_at.eq(None::<DateTime<Utc>>),
    ))
    .returning(webhook_deliveries::id)
    .get_results(conn)
    .await?;
    changed.extend(hurried);
    changed.sort_unstable();
    Ok(changed)
}

/// Pending deliveries and the age of the oldest (for metrics).
pub async fn pending_summary(conn: &mut AsyncPgConnection) -> QueryResult<(i64, Option<DateTime<Utc>>)> {
    webhook_deliveries::table
        .filter(webhook_deliveries::state.eq(state::PENDING))
        .select((diesel::dsl::count_star(), diesel::dsl::min(webhook_deliveries::created_at)))
        .first(conn)
        .await
}
