//! Payments listed on their own: filters, sorts and keyset paging.

use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::keyset::{self, Bound, KeyColumn, KeyKind, SortKey};
use super::models::Payment;
use super::schema::{orders, payments};

/// What a payment list is sorted by (then by id, in the same direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PaymentSortColumn {
    #[default]
    CreatedAt,
    Amount,
    /// Unpaid attempts have no `paid_at`; they sort last in both directions.
    PaidAt,
    /// Unsettled payments have no `settled_at`; they sort last in both directions.
    SettledAt,
}

/// A filtered, sorted page of payments. `None` filters match anything.
#[derive(Debug, Clone, Default)]
pub struct PaymentListQuery {
    /// Any of these statuses (empty: any status).
    pub statuses: Vec<i16>,
    /// The six-character human id, exactly.
    pub human_id: Option<String>,
    /// Only settled (`true`) or only unsettled (`false`) payments.
    pub settled: Option<bool>,
    /// Only payments whose money arrived (`true`: SUCCEEDED, or CANCELLED as a duplicate
    /// whose money is due back) or only the others (`false`).
    pub money_arrived: Option<bool>,
    pub payment_method: Option<String>,
    pub provider: Option<String>,
    /// ISO 4217 code.
    pub currency: Option<String>,
    pub order_id: Option<i64>,
    /// Payments of this user's orders.
    pub user_id: Option<i64>,
    /// Payments of this merchant's stores' orders.
    pub merchant_id: Option<uuid::Uuid>,
    pub amount_gte: Option<i64>,
    pub amount_lte: Option<i64>,
    pub created_gte: Option<DateTime<Utc>>,
    pub created_lte: Option<DateTime<Utc>>,
    pub paid_gte: Option<DateTime<Utc>>,
    pub paid_lte: Option<DateTime<Utc>>,
    pub settled_gte: Option<DateTime<Utc>>,
    pub settled_lte: Option<DateTime<Utc>>,
    pub sort: PaymentSortColumn,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
    pub keyset: Option<Bound>,
    pub reversed: bool,
}

fn filter<'a, ST: 'a>(
    mut query: payments::BoxedQuery<'a, Pg, ST>,
    q: &PaymentListQuery,
) -> payments::BoxedQuery<'a, Pg, ST> {
    match q.statuses.as_slice() {
        [] => {}
        [one] => query = query.filter(payments::status.eq(*one)),
        many => query = query.filter(payments::status.eq_any(many.to_vec())),
    }
    if let Some(human_id) = &q.human_id {
        query = query.filter(payments::human_id.eq(human_id.clone()));
    }
    match q.settled {
        Some(true) => query = query.filter(payments::settled_at.is_not_null()),
        Some(false) => query = query.filter(payments::settled_at.is_null()),
        None => {}
    }
    if let Some(arrived) = q.money_arrived {
        let due_back = payments::status
            .eq(4)
            .and(payments::failure_code.is_not_distinct_from(crate::domain::lifecycle::DUPLICATE_PAYMENT));
        let took = payments::status.eq(2).or(due_back);
        query = if arrived { query.filter(took) } else { query.filter(diesel::dsl::not(took)) };
    }
    if let Some(method) = &q.payment_method {
        query = query.filter(payments::payment_method.eq(method.clone()));
    }
    if let Some(provider) = &q.provider {
        query = query.filter(payments::provider.eq(provider.clone()));
    }
    if let Some(currency) = &q.currency {
        query = query.filter(payments::currency.eq(currency.clone()));
    }
    if let Some(order_id) = q.order_id {
        query = query.filter(payments::order_id.eq(order_id));
    }
    if let Some(user_id) = q.user_id {
        query = query
            .filter(payments::order_id.eq_any(orders::table.filter(orders::user_id.eq(user_id)).select(orders::id)));
    }
    if let Some(merchant_id) = q.merchant_id {
        query = query.filter(
            payments::order_id.eq_any(orders::table.filter(orders::merchant_id.eq(merchant_id)).select(orders::id)),
        );
    }
    if let Some(v) = q.amount_gte {
        query = query.filter(payments::amount_cents.ge(v));
    }
    if let Some(v) = q.amount_lte {
        query = query.filter(payments::amount_cents.le(v));
    }
    if let Some(t) = q.created_gte {
        query = query.filter(payments::created_at.ge(t));
    }
    if let Some(t) = q.created_lte {
        query = query.filter(payments::created_at.le(t));
    }
    if let Some(t) = q.paid_gte {
        query = query.filter(payments::paid_at.ge(t));
    }
    if let Some(t) = q.paid_lte {
        query = query.filter(payments::paid_at.le(t));
    }
    if let Some(t) = q.settled_gte {
        query = query.filter(payments::settled_at.ge(t));
    }
    if let Some(t) = q.settled_lte {
        query = query.filter(payments::settled_at.le(t));
    }
    query
}

fn sort<'a, ST: 'a>(
    query: payments::BoxedQuery<'a, Pg, ST>,
    column: PaymentSortColumn,
    descending: bool,
    reversed: bool,
) -> payments::BoxedQuery<'a, Pg, ST> {
    use PaymentSortColumn as S;
    let descending = descending != reversed;
    match column {
        S::CreatedAt if descending => query.order_by((payments::created_at.desc(), payments::id.desc())),
        S::CreatedAt => query.order_by((payments::created_at.asc(), payments::id.asc())),
        S::Amount if descending => query.order_by((payments::amount_cents.desc(), payments::id.desc())),
        S::Amount => query.order_by((payments::amount_cents.asc(), payments::id.asc())),
        // NULL last in the list; first when it is read from the other end.
        S::PaidAt if reversed && descending => {
            query.order_by((payments::paid_at.desc().nulls_first(), payments::id.desc()))
        }
        S::PaidAt if reversed => query.order_by((payments::paid_at.asc().nulls_first(), payments::id.asc())),
        S::PaidAt if descending => query.order_by((payments::paid_at.desc().nulls_last(), payments::id.desc())),
        S::PaidAt => query.order_by((payments::paid_at.asc().nulls_last(), payments::id.asc())),
        S::SettledAt if reversed && descending => {
            query.order_by((payments::settled_at.desc().nulls_first(), payments::id.desc()))
        }
        S::SettledAt if reversed => query.order_by((payments::settled_at.asc().nulls_first(), payments::id.asc())),
        S::SettledAt if descending => query.order_by((payments::settled_at.desc().nulls_last(), payments::id.desc())),
        S::SettledAt => query.order_by((payments::settled_at.asc().nulls_last(), payments::id.asc())),
    }
}

fn key_column(column: PaymentSortColumn) -> KeyColumn {
    use PaymentSortColumn as S;
    let name = match column {
        S::CreatedAt => "payments.created_at",
        S::Amount => "payments.amount_cents",
        S::PaidAt => "payments.paid_at",
        S::SettledAt => "payments.settled_at",
    };
    let nulls_last = matches!(column, S::PaidAt | S::SettledAt);
    KeyColumn { id: "payments.id", column: Some(name), small_int: false, nulls_last }
}

/// The sort key of `payment`, as a cursor carries it.
pub fn sort_key(payment: &Payment, column: PaymentSortColumn) -> SortKey {
    match column {
        PaymentSortColumn::CreatedAt => SortKey::Time(payment.created_at),
        PaymentSortColumn::Amount => SortKey::Int(payment.amount_cents),
        PaymentSortColumn::PaidAt => payment.paid_at.map_or(SortKey::Null, SortKey::Time),
        PaymentSortColumn::SettledAt => payment.settled_at.map_or(SortKey::Null, SortKey::Time),
    }
}

pub fn key_kind(column: PaymentSortColumn) -> KeyKind {
    match column {
        PaymentSortColumn::CreatedAt => KeyKind::Time,
        PaymentSortColumn::Amount => KeyKind::Int,
        PaymentSortColumn::PaidAt | PaymentSortColumn::SettledAt => KeyKind::NullableTime,
    }
}

/// One page of payments (`q.limit` rows at most): one statement.
pub async fn list(conn: &mut AsyncPgConnection, q: &PaymentListQuery) -> QueryResult<Vec<Payment>> {
    let mut rows = filter(payments::table.select(Payment::as_select()).into_boxed(), q);
    if let Some(bound) = &q.keyset {
        let Some(condition) = keyset::condition::<payments::table>(&key_column(q.sort), q.descending, bound) else {
            return Ok(Vec::new());
        };
        rows = rows.filter(condition);
    }
    if q.offset == 0 {
        return sort(rows, q.sort, q.descending, q.reversed).limit(q.limit).load(conn).await;
    }
    // Past the first page the rows to skip are found by id alone, in the sort indexes,
    // and only the page's own rows are read from the table (as for orders).
    let ids = sort(filter(payments::table.select(payments::id).into_boxed(), q), q.sort, q.descending, false)
        .limit(q.limit)
        .offset(q.offset);
    let page = payments::table.select(Payment::as_select()).into_boxed().filter(payments::id.eq_any(ids));
    sort(page, q.sort, q.descending, false).load(conn).await
}

/// How many payments match the filter (paging ignored).
pub async fn count(conn: &mut AsyncPgConnection, q: &PaymentListQuery) -> QueryResult<i64> {
    filter(payments::table.select(count_star()).into_boxed(), q).get_result(conn).await
}

pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<Payment>> {
    payments::table.find(id).select(Payment::as_select()).first(conn).await.optional()
}
