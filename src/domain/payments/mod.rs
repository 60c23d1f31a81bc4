//! Payments read on their own (issue 13's reads): one payment by id, and a filtered, sorted
//! list paged by number or by cursor. A payment is visible exactly when its order is.
//! `state` maps the service's states to the seeds' words; `update` is `updatePayment`.

pub mod card;
pub mod details;
pub mod state;
pub mod update;

use chrono::{DateTime, Utc};

use super::access::Caller;
use super::cursor::{ListShape, Window};
use super::enums::PaymentAttemptStatus;
use super::paging::{Page, Total};
use crate::db::payments::{self as q, PaymentListQuery, PaymentSortColumn};
use crate::db::{DbPool, models, queries};
use crate::error::{AppError, AppResult};

/// Filters of the payment list; `None` matches anything. Ranges are inclusive.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    /// Any of these statuses (empty: any).
    pub statuses: Vec<PaymentAttemptStatus>,
    /// The six-character human id, exactly.
    pub human_id: Option<String>,
    /// Only settled (`true`) or only unsettled (`false`) payments.
    pub settled: Option<bool>,
    /// Only payments whose money arrived (`true`) or only the others (`false`).
    pub money_arrived: Option<bool>,
    pub payment_method: Option<String>,
    pub provider: Option<String>,
    /// ISO 4217 code (upper case).
    pub currency: Option<String>,
    pub order_id: Option<i64>,
    pub user_id: Option<i64>,
    pub amount_gte: Option<i64>,
    pub amount_lte: Option<i64>,
    pub created_at_gte: Option<DateTime<Utc>>,
    pub created_at_lte: Option<DateTime<Utc>>,
    pub paid_at_gte: Option<DateTime<Utc>>,
    pub paid_at_lte: Option<DateTime<Utc>>,
    pub settled_at_gte: Option<DateTime<Utc>>,
    pub settled_at_lte: Option<DateTime<Utc>>,
    /// The filter can match nothing (contradictory parts): the page is empty.
    pub nothing: bool,
}

/// One payment, if `caller` may see its order.
pub async fn get_payment(pool: &DbPool, caller: &Caller, id: i64) -> AppResult<Option<models::Payment>> {
    let mut conn = pool.get().await?;
    get_payment_in(&mut conn, caller, id).await
}

pub(crate) async fn get_payment_in(
    conn: &mut diesel_async::AsyncPgConnection,
    caller: &Caller,
    id: i64,
) -> AppResult<Option<models::Payment>> {
    let Some(payment) = q::find(conn, id).await? else {
        return Ok(None);
    };
    let order = queries::find_order(conn, payment.order_id).await?;
    Ok(order.filter(|o| caller.can_see_order(o)).map(|_| payment))
}

fn check_range<T: PartialOrd>(low: Option<T>, high: Option<T>, names: (&str, &str)) -> AppResult<()> {
    match (low, high) {
        (Some(low), Some(high)) if low > high => {
            Err(AppError::bad_input(format!("{} must not be greater than {}", names.0, names.1)))
        }
        _ => Ok(()),
    }
}

fn text(value: Option<String>, name: &str) -> AppResult<Option<String>> {
    let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if value.as_deref().is_some_and(|v| v.contains('\0') || v.len() > 100) {
        return Err(AppError::bad_input(format!("{name} must be at most 100 characters, without NUL")));
    }
    Ok(value)
}

/// A page of the payments `caller` may see.
pub async fn list_payments(
    pool: &DbPool,
    caller: &Caller,
    filter: PaymentFilter,
    sort: PaymentSortColumn,
    descending: bool,
    window: Window,
) -> AppResult<Page<models::Payment>> {
    check_range(filter.amount_gte, filter.amount_lte, ("amountGte", "amountLte"))?;
    check_range(filter.created_at_gte, filter.created_at_lte, ("createdAtGte", "createdAtLte"))?;
    check_range(filter.paid_at_gte, filter.paid_at_lte, ("paidAtGte", "paidAtLte"))?;
    check_range(filter.settled_at_gte, filter.settled_at_lte, ("settledAtGte", "settledAtLte"))?;
    for (name, at) in [
        ("createdAtGte", filter.created_at_gte),
        ("createdAtLte", filter.created_at_lte),
        ("paidAtGte", filter.paid_at_gte),
        ("paidAtLte", filter.paid_at_lte),
        ("settledAtGte", filter.settled_at_gte),
        ("settledAtLte", filter.settled_at_lte),
    ] {
        if at.is_some_and(|t| !(1..=9999).contains(&chrono::Datelike::year(&t))) {
            return Err(AppError::bad_input(format!("{name} must be a date between the years 1 and 9999")));
        }
    }
    if filter.nothing {
        return Ok(Page::empty(&window));
    }
    let mut user_id = filter.user_id;
    if let Some(own) = caller.confined_to() {
        if user_id.is_some_and(|asked| asked != own) {
            return Ok(Page::empty(&window));
        }
        user_id = Some(own);
    }
    let mut statuses: Vec<i16> = filter.statuses.iter().map(|s| s.code()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    let human_id = text(filter.human_id, "humanId")?.map(|h| h.to_ascii_uppercase());
    let mut query = PaymentListQuery {
        statuses,
        human_id,
        settled: filter.settled,
        money_arrived: filter.money_arrived,
        payment_method: text(filter.payment_method, "paymentMethod")?,
        provider: text(filter.provider, "provider")?,
        currency: filter
            .currency
            .map(|c| crate::money::Currency::parse("currency", c.trim()).map(|c| c.code().to_owned()))
            .transpose()?,
        order_id: filter.order_id,
        user_id,
        merchant_id: caller.confined_to_merchant(),
        amount_gte: filter.amount_gte,
        amount_lte: filter.amount_lte,
        created_gte: filter.created_at_gte,
        created_lte: filter.created_at_lte,
        paid_gte: filter.paid_at_gte,
        paid_lte: filter.paid_at_lte,
        settled_gte: filter.settled_at_gte,
        settled_lte: filter.settled_at_lte,
        sort,
        descending,
        limit: window.size() + 1,
        ..Default::default()
    };
    let name = match sort {
        PaymentSortColumn::CreatedAt => "CREATED_AT",
        PaymentSortColumn::Amount => "AMOUNT",
        PaymentSortColumn::PaidAt => "PAID_AT",
        PaymentSortColumn::SettledAt => "SETTLED_AT",
    };
    let fingerprint = format!(
        "payments|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        query.statuses,
        query.human_id,
        query.settled,
        query.money_arrived,
        query.payment_method,
        query.provider,
        query.currency,
        query.order_id,
        query.user_id,
        query.merchant_id,
        query.amount_gte,
        query.amount_lte,
        query.created_gte,
        query.created_lte,
        query.paid_gte,
        query.paid_lte,
        query.settled_gte,
        query.settled_lte
    );
    let shape = ListShape::new(name, descending, q::key_kind(sort), &fingerprint);
    let plan = window.plan(&shape)?;
    (query.offset, query.keyset, query.reversed) = (plan.offset, plan.bound.clone(), plan.reversed);
    let total_count = if plan.request.count_total {
        let (pool, query) = (pool.clone(), query.clone());
        Total::spawn(async move {
            let mut conn = pool.get().await?;
            Ok(q::count(&mut conn, &query).await?)
        })
    } else {
        Total::NotAsked
    };
    let mut conn = pool.get().await?;
    let nodes = q::list(&mut conn, &query).await?;
    drop(conn);
    Ok(window.finish(nodes, &plan, total_count, &shape, |p| (q::sort_key(p, sort), p.id)))
}
