//! The delivery log: every delivery with its attempts, for admins (all) and merchants
//! (their own), and sending deliveries again under their own webhook ids.

use chrono::{DateTime, Utc};

use crate::db::webhooks::{self as wq, DeliveryFilter};
use crate::db::{DbPool, models};
use crate::domain::access::{Caller, Role};
use crate::domain::paging::PageRequest;
use crate::error::{AppError, AppResult};

/// Filters a client gives.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub order_id: Option<i64>,
    pub endpoint_id: Option<i64>,
    pub state: Option<i16>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_until: Option<DateTime<Utc>>,
}

/// The filter narrowed to what `caller` may see: admins and support all, a merchant its
/// own deliveries; anyone else is FORBIDDEN.
fn scoped(caller: &Caller, filter: LogFilter) -> AppResult<DeliveryFilter> {
    let merchant_id = match caller.role {
        Role::Admin | Role::Support => None,
        Role::Merchant => Some(caller.merchant_id.unwrap_or_else(uuid::Uuid::nil)),
        Role::Customer | Role::Provider => {
            return Err(AppError::Forbidden("the webhook delivery log needs a staff or merchant key".to_owned()));
        }
    };
    if let (Some(from), Some(until)) = (filter.created_from, filter.created_until)
        && from >= until
    {
        return Err(AppError::bad_input("createdFrom must be before createdUntil"));
    }
    Ok(DeliveryFilter {
        merchant_id,
        order_id: filter.order_id,
        endpoint_id: filter.endpoint_id,
        state: filter.state,
        created_from: filter.created_from,
        created_until: filter.created_until,
    })
}

/// One page of deliveries (newest first) with `has_next_page`.
pub async fn list(
    pool: &DbPool,
    caller: &Caller,
    filter: LogFilter,
    page: PageRequest,
) -> AppResult<(Vec<models::WebhookDelivery>, bool)> {
    let filter = scoped(caller, filter)?;
    let mut conn = pool.get().await?;
    let mut rows = wq::list_deliveries(&mut conn, &filter, page.per_page + 1, page.offset()).await?;
    let more = rows.len() as i64 > page.per_page;
    rows.truncate(usize::try_from(page.per_page).unwrap_or(usize::MAX));
    Ok((rows, more))
}

/// The most deliveries one redelivery request sends again.
pub const MAX_REDELIVER: i64 = 1_000;

/// Sends again one delivery (`id`) or every delivery matching `filter` (at most
/// [`MAX_REDELIVER`]); returns the ids. Admins, or a merchant for its own.
pub async fn redeliver(pool: &DbPool, caller: &Caller, id: Option<i64>, filter: LogFilter) -> AppResult<Vec<i64>> {
    if !matches!(caller.role, Role::Admin | Role::Merchant) {
        return Err(AppError::Forbidden("redelivering webhooks needs an admin or merchant key".to_owned()));
    }
    if id.is_none() && filter.created_from.is_none() && filter.order_id.is_none() {
        return Err(AppError::bad_input(
            "give a deliveryId, or a range (createdFrom, createdUntil) or orderId to redeliver",
        ));
    }
    let filter = scoped(caller, filter)?;
    let mut conn = pool.get().await?;
    let ids = id.map(|id| vec![id]);
    let sent = wq::redeliver(&mut conn, &filter, ids.as_deref(), MAX_REDELIVER).await?;
    if let (Some(id), true) = (id, sent.is_empty()) {
        return Err(AppError::not_found(format!("webhook delivery {id} not found")));
    }
    if !sent.is_empty() {
        wq::notify(&mut conn).await?;
    }
    Ok(sent)
}

/// The attempts of the given deliveries, in one query.
pub async fn attempts(pool: &DbPool, ids: &[i64]) -> AppResult<Vec<models::WebhookAttempt>> {
    let conn = pool.get().await?;
    Ok(wq::attempts_for_deliveries(&conn, ids).await?)
}

/// Pending deliveries and the age in seconds of the oldest (for `/metrics`).
pub async fn pending(pool: &DbPool) -> AppResult<(i64, i64)> {
    let mut conn = pool.get().await?;
    let (count, oldest) = wq::pending_summary(&mut conn).await?;
    Ok((count, oldest.map_or(0, |at| (chrono::Utc::now() - at).num_seconds().max(0))))
}
