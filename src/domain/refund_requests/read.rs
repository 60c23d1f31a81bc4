//! Reading refund requests: by id, in a filtered page, and nested in orders (one query per
//! kind for any number of orders).

use super::is_valid;
use crate::db::refund_requests::{self as q, ListQuery};
use crate::db::{DbPool, models, queries};
use crate::domain::access::{Caller, Role};
use crate::domain::enums::RefundRequestStatus;
use crate::domain::paging::PageRequest;
use crate::error::{AppError, AppResult};

/// A request as a caller sees it: with `valid`, and the requester's key name shown to
/// staff only (others see their own name, and `staff`).
#[derive(Debug, Clone)]
pub struct Seen {
    pub request: models::RefundRequest,
    pub valid: bool,
}

/// Filters of the list.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub order_id: Option<i64>,
    pub status: Option<RefundRequestStatus>,
    pub valid: Option<bool>,
}

fn require_reader(caller: &Caller) -> AppResult<()> {
    match caller.role {
        Role::Provider => Err(AppError::Forbidden("refund requests need an API key".to_owned())),
        _ => Ok(()),
    }
}

pub async fn get(pool: &DbPool, caller: &Caller, id: i64) -> AppResult<Option<Seen>> {
    require_reader(caller)?;
    let mut conn = pool.get().await?;
    let Some(request) = q::find(&mut conn, id).await? else {
        return Ok(None);
    };
    let order = queries::find_order(&conn, request.order_id).await?;
    Ok(order.filter(|o| caller.can_see_order(o)).map(|order| Seen { valid: is_valid(&request, &order), request }))
}

/// A page of the requests `caller` may see, newest first; one query whatever the size.
pub async fn list(
    pool: &DbPool,
    caller: &Caller,
    filter: RequestFilter,
    page: PageRequest,
) -> AppResult<(Vec<Seen>, bool)> {
    require_reader(caller)?;
    let query = ListQuery {
        order_id: filter.order_id,
        status: filter.status.map(RefundRequestStatus::code),
        valid: filter.valid,
        user_id: caller.confined_to(),
        merchant_id: caller.confined_to_merchant(),
        limit: page.per_page + 1,
        offset: page.offset(),
    };
    let mut conn = pool.get().await?;
    let mut rows = q::list(&mut conn, &query).await?;
    let more = rows.len() as i64 > page.per_page;
    rows.truncate(usize::try_from(page.per_page).unwrap_or(usize::MAX));
    Ok((rows.into_iter().map(|(request, valid)| Seen { request, valid }).collect(), more))
}

/// The requests of the given orders (visible to the caller: the caller checked the
/// orders), with `valid`: one query.
pub async fn of_orders(pool: &DbPool, order_ids: &[i64]) -> AppResult<Vec<Seen>> {
    if order_ids.is_empty() {
        return Ok(Vec::new());
    }
    let conn = pool.get().await?;
    let rows = q::of_orders_with_valid(&conn, order_ids).await?;
    Ok(rows.into_iter().map(|(request, valid)| Seen { request, valid }).collect())
}

/// The transitions of the given requests, oldest first: one query.
pub async fn history(pool: &DbPool, ids: &[i64]) -> AppResult<Vec<models::RefundRequestTransition>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let conn = pool.get().await?;
    Ok(q::transitions_of(&conn, ids).await?)
}
